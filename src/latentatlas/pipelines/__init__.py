"""One module per command: each ties a Run (the run folder) to the pure modules and writes its outputs."""
