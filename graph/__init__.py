"""InfoGraph pipeline with hard negatives on TU data sets."""
