"""tdexplain: make the decisions of TimeDistributed(CNN) + GRU video classifiers visible."""

__version__ = "0.1.0"
