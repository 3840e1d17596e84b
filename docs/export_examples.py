"""Write the example inputs: Fashion-MNIST *test* images in docs/examples/fashion-mnist/ and MNIST ones in
docs/examples/mnist/ (never seen in training), one folder per model.

    PYTHONPATH=. python docs/export_examples.py
"""

from pathlib import Path

from PIL import Image

from training.data import FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist5k

# (file name, class id, which occurrence of that class in the test split)
EXAMPLES = [("tshirt", 0, 0), ("tshirt2", 0, 1), ("sneaker", 7, 0), ("sneaker2", 7, 1), ("trouser", 1, 0),
            ("pullover", 2, 0), ("dress", 3, 0), ("coat", 4, 0), ("sandal", 5, 0), ("shirt", 6, 0), ("bag", 8, 0),
            ("ankle_boot", 9, 0)]


MNIST_DIGITS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9)  # the first test image of each digit: mnist/digitN.png


def export_mnist(out: Path) -> list[str]:
    images, labels = load_mnist5k("test")
    out.mkdir(exist_ok=True)
    lines = []
    for digit in MNIST_DIGITS:
        index = int((labels == digit).nonzero()[0][0])
        Image.fromarray(images[index]).save(out / f"digit{digit}.png")
        lines.append(f"| mnist/digit{digit}.png | MNIST digit {digit} | {index} (mnist5k test split) |")
    return lines


def main() -> None:
    images, labels = load_fashion_mnist("test")
    out = Path(__file__).parent / "examples"
    out.mkdir(exist_ok=True)
    lines = ["# Example inputs", "",
             "Fashion-MNIST and MNIST test-split images (the models never trained on them).", "",
             "| file | class | test index |", "|---|---|---|"]
    for name, cls, occurrence in EXAMPLES:
        index = int((labels == cls).nonzero()[0][occurrence])
        (out / "fashion-mnist").mkdir(exist_ok=True)
        Image.fromarray(images[index]).save(out / "fashion-mnist" / f"{name}.png")
        lines.append(f"| fashion-mnist/{name}.png | {FASHION_MNIST_CLASSES[cls]} | {index} |")
    lines += export_mnist(out / "mnist")
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
