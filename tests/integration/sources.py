"""The expected sources, as real services: each declares, by a watermark on every partition,
that it has published everything before now."""

from __future__ import annotations

from producers.publisher import DisclosurePublisher, WatermarkSource
from reference import ReferenceData


def every_source_declares_all_published(
    bootstrap: str, topic: str, reference: ReferenceData
) -> None:
    for source in reference.sources:
        with DisclosurePublisher(
            bootstrap, topic, source=WatermarkSource(source.source, "1.0.0"), watermark_every=None
        ):
            pass  # closing flushes, then sends the watermark to every partition
