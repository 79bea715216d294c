"""The pipeline's stages; each module's `run(exp, run, tracker, params)` executes one job of its grid."""
