"""Write the bad-input corpus (`facecascade.testing.corpus`) into a folder, to try a folder run by hand.

python tools/make_bad_corpus.py OUT_DIR [--face PHOTO]
facecascade analyze OUT_DIR ../shared/data/dlib_faces --json out.jsonl   # reports each bad file, exits 1
"""

from __future__ import annotations

import argparse

from facecascade.io import load_image
from facecascade.testing.corpus import write_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument(
        "--face", default="../shared/data/dlib_faces/2008_002506.jpg", help="photo the readable cases are made from"
    )
    args = parser.parse_args()
    for name, readable in write_corpus(args.out, load_image(args.face)).items():
        print(f"{name:24s} {'readable' if readable else 'must fail with one line'}")


if __name__ == "__main__":
    main()
