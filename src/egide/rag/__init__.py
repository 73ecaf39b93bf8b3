"""Knowledge bases: parsing, chunking, hybrid retrieval under clearance."""
