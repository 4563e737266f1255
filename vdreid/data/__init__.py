"""Datasets as records, synthetic look-alikes, the decoded-image cache,
the identity x modality sampler and numpy transforms."""
