"""The pipeline's stages; each module's `run(exp, rundir, tracker, params)` executes one job of its grid."""
