"""Similar-case search: embeddings of hazard instances, their index beside the bank, and queries."""
