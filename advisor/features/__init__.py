"""Features: the store of recent samples, and the pure builders of what the models read (prediction inputs,
the cost models feature matrix, the dirty-rate forecasters feature row). Serving, training and batch prediction
all build their inputs here, so what a model was trained on is by construction what it is served."""
