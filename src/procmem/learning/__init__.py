"""Learning over time: statistics, candidates, verification, promotion."""
