import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # Keras 3 runs on the PyTorch CPU build
