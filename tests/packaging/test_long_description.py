"""README.md is the package's long description (pyproject ``readme``): on PyPI a relative link or image has no
repository to resolve against, so every link is absolute (images through raw URLs) or an in-page ``#anchor``."""

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT_URL = PYPROJECT["project"]["urls"]["Repository"]
RAW_URL = PROJECT_URL.replace("https://github.com/", "https://raw.githubusercontent.com/") + "/main/"

# [text](target), ![alt](target), [ref]: target, <a href="target">, <img src="target">
LINK = re.compile(r"\]\(\s*<?([^)\s>]+)|^\s*\[[^\]]+\]:\s*(\S+)|\b(?:href|src)\s*=\s*[\"']([^\"']+)", re.MULTILINE)
IMAGE = re.compile(r"!\[[^\]]*\]\(\s*<?([^)\s>]+)|<img\b[^>]*\bsrc\s*=\s*[\"']([^\"']+)")


def targets(pattern: re.Pattern, text: str) -> list[str]:
    return [next(g for g in m.groups() if g) for m in pattern.finditer(text)]


def long_description() -> str:
    assert PYPROJECT["project"]["readme"] == "README.md"
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_project_urls_name_the_repository():
    urls = PYPROJECT["project"]["urls"]
    assert {"Homepage", "Repository", "Documentation"} <= set(urls)
    assert all(url.startswith(PROJECT_URL) for url in urls.values())


def test_the_long_description_has_no_relative_link():
    found = targets(LINK, long_description())
    assert found, "the link pattern found nothing: it no longer reads the README"
    relative = [t for t in found if not re.match(r"(https?:|mailto:|#)", t)]
    assert not relative, f"relative links break on PyPI: {relative}"


def test_images_come_from_raw_urls_that_exist_in_the_checkout():
    images = targets(IMAGE, long_description())
    assert images
    for url in images:
        assert url.startswith(RAW_URL), url
        assert (ROOT / url.removeprefix(RAW_URL)).is_file(), f"{url} names no file of the repository"


def test_links_into_the_repository_name_files_that_exist():
    prefix = PROJECT_URL + "/blob/main/"
    for url in (t for t in targets(LINK, long_description()) if t.startswith(prefix)):
        assert (ROOT / url.removeprefix(prefix).split("#")[0]).exists(), url


def test_the_checker_catches_a_relative_link():
    assert targets(LINK, "see [the docs](docs/ARCHITECTURE.md) and ![x](docs/img/a.png)\n[r]: docs/x.md") == [
        "docs/ARCHITECTURE.md", "docs/img/a.png", "docs/x.md"]
