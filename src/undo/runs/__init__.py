"""Run folders and what identifies them: shared names, fingerprints, teacher selection and metric records."""
