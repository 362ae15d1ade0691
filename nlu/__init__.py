"""Natural-language understanding: training data, the embedded classifier, backends, evaluation."""
