"""The progress bar's words for batches, and one bar across the generations of an img2img batch."""

from __future__ import annotations

from modules.progress import Progress
from modules.ui.progress import images_text, progress_html


def report_after(progress: Progress, jobs: int):
    for _ in range(jobs):
        progress.next_job()
    return progress.report()


def test_images_text_names_the_image_and_the_count():
    one = Progress()
    one.begin("txt2img", job_count=1)
    assert images_text(one.report()) == ""
    four = Progress()
    four.begin("txt2img", job_count=4)
    assert images_text(four.report()) == "image 1 of 4, "
    assert images_text(report_after(four, 3)) == "image 4 of 4, "
    batches = Progress()
    batches.begin("txt2img", job_count=2, batch_size=3)
    assert images_text(batches.report()) == "images 1-3 of 6, "
    assert images_text(report_after(batches, 1)) == "images 4-6 of 6, "
    together = Progress()
    together.begin("txt2img", job_count=1, batch_size=2)
    assert images_text(together.report()) == "images 1-2 of 2, "


def test_progress_html_shows_it_in_the_bar():
    progress = Progress()
    progress.begin("txt2img", job_count=2)
    progress.next_job()
    progress.set_step(5, 10)
    assert "75% - image 2 of 2, step 5/10" in progress_html(progress.report())


def test_a_span_keeps_one_bar_across_generations():
    """img2img's batch of a folder: each image's generation begins again; the bar goes on."""
    progress = Progress()
    seen = []
    with progress.span("img2img", job_count=6, batch_size=1):
        for _ in range(3):  # three files, two batches (n_iter) each
            progress.begin("img2img", job_count=2)
            for batch in range(2):
                if batch:
                    progress.next_job()
                progress.set_step(1, 2)
                seen.append((progress.report().job_no, round(progress.report().progress, 3)))
    assert [job for job, _ in seen] == [0, 1, 2, 3, 4, 5]
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] > 0.9
    assert progress.report().job_count == 6
    # Outside the span, a generation starts a bar of its own again.
    progress.begin("img2img", job_count=2)
    assert progress.report().job_no == 0 and progress.report().job_count == 2
