"""tagflow: thesaurus-based document tagging and classification."""
