"""Layer 1, the base every other layer imports: errors, atomic writes, the config schema and its
checks, checkpoint I/O, the registry helper and the scripts' CLI conventions. Imports nothing above it."""
