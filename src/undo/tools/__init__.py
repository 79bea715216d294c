"""Tools beside the pipeline: sampling from any checkpoint, question-answer pairs from an LLM endpoint."""
