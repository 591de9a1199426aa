"""Audio decoding (files, streams) and log-mel features."""
