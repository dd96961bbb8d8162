"""jinit's random numbers: the threefry kernels, the samplers built on them, the portable
samplers and their table, the Householder QR, and the sampling protocol. A map in README.md."""
