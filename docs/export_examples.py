"""Write the example inputs in docs/examples/: Fashion-MNIST *test* images (never seen in training).

    python docs/export_examples.py
"""

from pathlib import Path

from PIL import Image

from training.data import FASHION_MNIST_CLASSES, load_fashion_mnist

# (file name, class id, which occurrence of that class in the test split)
EXAMPLES = [("tshirt", 0, 0), ("tshirt2", 0, 1), ("sneaker", 7, 0), ("sneaker2", 7, 1), ("trouser", 1, 0),
            ("pullover", 2, 0), ("dress", 3, 0), ("coat", 4, 0), ("sandal", 5, 0), ("shirt", 6, 0), ("bag", 8, 0),
            ("ankle_boot", 9, 0)]


def main() -> None:
    images, labels = load_fashion_mnist("test")
    out = Path(__file__).parent / "examples"
    out.mkdir(exist_ok=True)
    lines = ["# Example inputs", "", "Fashion-MNIST test-split images (the models never trained on them).", "",
             "| file | class | test index |", "|---|---|---|"]
    for name, cls, occurrence in EXAMPLES:
        index = int((labels == cls).nonzero()[0][occurrence])
        Image.fromarray(images[index]).save(out / f"{name}.png")
        lines.append(f"| {name}.png | {FASHION_MNIST_CLASSES[cls]} | {index} |")
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
