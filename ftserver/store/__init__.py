"""The share on disk: names, confinement, partials, publishing, locks and the digest cache."""
