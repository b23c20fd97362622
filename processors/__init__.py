"""Audio processing: I/O, log-Mel features and their inverse, gaps and splicing."""
