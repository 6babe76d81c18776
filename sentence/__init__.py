"""Quick-thought sentence embeddings with hard negatives, an offline SentEval, and a sentence-transformers loss."""
