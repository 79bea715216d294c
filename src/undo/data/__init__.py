"""Text sources, tokenizers, packing into token blocks, the on-disk block cache and batch sampling."""
