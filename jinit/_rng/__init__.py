"""jinit's random numbers: the threefry kernels, the distributions built on them
(``distributions.py``), portable mode's distributions and their table, the Householder QR, and
the draws the tree builder batches (``draws.py``). A map in README.md."""
