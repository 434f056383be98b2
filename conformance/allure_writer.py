"""Allure results written off the case path.

allure-pytest's file logger writes every test result and every fixture container to a file of its own the moment
it is reported: four to five new files a case, each about a millisecond on a journalled disk, which made writing
Allure results most of the time a case takes to judge. ``install`` keeps allure's logger (its registration, its
clean-up, its attachments) and hands only those two writes to one background thread: the item is serialized at
once, exactly as allure does it, and its file appears under the same name pattern; ``close`` (a config clean-up,
after every hook) waits until the last file is on disk.

Only a conformance run that writes Allure results installs it; when allure-pytest's logger no longer has the
method this replaces, results are written as allure writes them.
"""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import uuid
from pathlib import Path
from typing import Any


class BackgroundWriter:
    """Writes serialized Allure items to ``report_dir`` from one thread, in the order they were reported."""

    def __init__(self, report_dir: Path) -> None:
        from allure_commons.logger import INDENT
        from attr import asdict

        self.report_dir = Path(report_dir)
        self._asdict = asdict
        self._indent = INDENT if os.environ.get("ALLURE_INDENT_OUTPUT") else None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._failed: list[str] = []
        self._thread = threading.Thread(target=self._drain, name="conformance-allure-writer", daemon=True)
        self._thread.start()

    def report_item(self, item: Any) -> None:
        """``AllureFileLogger._report_item``'s serialization, with the write queued."""
        filename = item.file_pattern.format(prefix=uuid.uuid4())
        data = self._asdict(item, filter=lambda _, v: v or v is False)
        self._queue.put((filename, json.dumps(data, indent=self._indent, ensure_ascii=False)))

    def close(self) -> None:
        """Wait for every queued file; say on stderr which could not be written (the run's verdicts stand)."""
        self._queue.put(None)
        self._thread.join()
        if self._failed:
            sys.stderr.write(f"conformance: {len(self._failed)} Allure result file(s) could not be written to "
                             f"{self.report_dir}: {self._failed[0]}\n")

    def _drain(self) -> None:
        while (job := self._queue.get()) is not None:
            filename, text = job
            tmp = self.report_dir / f"{filename}.tmp"
            try:
                tmp.write_text(text, encoding="utf8")
                os.replace(tmp, self.report_dir / filename)
            except OSError as exc:
                self._failed.append(f"{filename}: {exc}")


def install(config: Any) -> BackgroundWriter | None:
    """Give the run's Allure file logger a background writer (None when there is no such logger to give one)."""
    try:
        import allure_commons
        from allure_commons.logger import AllureFileLogger
    except ImportError:
        return None
    for plugin in allure_commons.plugin_manager.get_plugins():
        if type(plugin) is AllureFileLogger and callable(getattr(plugin, "_report_item", None)):
            writer = BackgroundWriter(plugin._report_dir)
            plugin._report_item = writer.report_item  # the instance's own writes; its hooks call this method
            config.add_cleanup(writer.close)
            return writer
    return None
