"""ask(): the course corpus stays in sync with the lessons, the question bank is answered, off-topic is refused."""
import json
import re
from pathlib import Path

import pytest

from mdn_course.assistant import Answer, ask
from mdn_course.assistant.corpus import (FAQ_PATH, heading_anchor, lesson_files, load_passages,
                                         resolve_lesson)
from mdn_course.assistant.retrieval import Index, build_index, tokenize

ROOT = Path(__file__).resolve().parents[1]
BANK = json.loads((ROOT / "tests" / "assistant_questions.json").read_text())


@pytest.fixture(scope="module")
def index() -> Index:
    return build_index()


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.delenv("MDN_COURSE_LLM_URL", raising=False)


def notebook_sections(name):
    nb = json.loads((ROOT / "notebooks" / name).read_text())
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            found += [t.strip() for t in re.findall(r"^#{1,2}\s+(.+?)\s*$", "".join(cell["source"]), re.M)]
    return found


# ------------------------------------------------------------------ the corpus follows the lessons

def test_every_lesson_section_is_in_the_corpus(index):
    indexed = {(p.notebook, p.section) for p in index.passages if p.kind == "lesson"}
    for path in lesson_files():
        for section in notebook_sections(path.name):
            assert (path.name, section) in indexed, (path.name, section)


def test_every_narration_script_is_placed_in_the_section_that_plays_it(index):
    played = {m for path in lesson_files() for cell in json.loads(path.read_text())["cells"]
              for m in re.findall(r'play\("([\w.-]+)"\)', "".join(cell["source"]))}
    scripts = {p.read_text().strip(): p.stem for p in (ROOT / "narration" / "scripts").glob("*.txt")
               if p.stem in played}
    placed = {p.text: (p.notebook, p.section) for p in index.passages if p.kind == "narration"}
    assert len(played) >= 20 and set(scripts) == set(placed)
    for text, (notebook, section) in placed.items():
        nb = json.loads((ROOT / "notebooks" / notebook).read_text())
        sources = ["".join(c["source"]) for c in nb["cells"]]
        play_cell = next(i for i, s in enumerate(sources) if f'play("{scripts[text]}")' in s)
        before = [t for s in sources[:play_cell] for t in re.findall(r"^#{1,2}\s+(.+?)\s*$", s, re.M)]
        assert before[-1] == section


def test_faq_entries_point_at_existing_sections(index):
    sections = {(p.notebook, p.section) for p in index.passages if p.kind == "lesson"}
    faq = json.loads(FAQ_PATH.read_text())
    assert len(faq) >= 15
    for entry in faq:
        assert (entry["notebook"], entry["section"]) in sections, entry["question"]


def test_no_code_cell_reaches_the_corpus():
    passages = load_passages()
    nb = json.loads((ROOT / "notebooks" / "03_exercise_mdn_loss.ipynb").read_text())
    answer = next("".join(c["source"]) for c in nb["cells"] if "answer" in c["metadata"].get("tags", []))
    solution = [ln.strip() for ln in answer.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0].splitlines()
                if len(ln.strip()) > 12]
    assert solution
    for p in passages:
        assert not any(line in p.text for line in solution), p.section
    assert not any('play("' in p.text for p in passages)


def test_the_exercise_is_read_from_the_student_copy():
    names = [p.name for p in lesson_files()]
    assert "03_exercise_mdn_loss_student.ipynb" in names and "03_exercise_mdn_loss.ipynb" not in names
    assert resolve_lesson(3) == resolve_lesson("03_exercise_mdn_loss.ipynb") == "03_exercise_mdn_loss_student.ipynb"
    with pytest.raises(ValueError, match="01_why_distributions.ipynb"):
        resolve_lesson(99)


# ------------------------------------------------------------------ the question bank

def test_question_bank_covers_every_lesson_with_existing_headings():
    questions = BANK["questions"]
    assert len(questions) >= 60
    labelled = {q["nb"] for q in questions}
    assert labelled <= {p.name for p in lesson_files()} and {n[:2] for n in labelled} >= {"01", "02", "03", "04", "05"}
    for q in questions:
        assert q["section"] in notebook_sections(q["nb"]), q
    assert {"conceptual", "why", "debugging", "notation", "plot"} <= {q["type"] for q in questions}


def test_question_bank_top3_accuracy_is_at_least_90_percent(index):
    misses = [q["q"] for q in BANK["questions"]
              if (q["nb"], q["section"]) not in [(h.notebook, h.section) for h in index.search(q["q"], k=3)]]
    assert len(misses) <= 0.1 * len(BANK["questions"]), misses


def test_every_bank_question_gets_an_on_topic_answer_with_its_section(index):
    for q in BANK["questions"][::4]:
        answer = ask(q["q"], index=index)
        assert answer.on_topic and answer.text and answer.sources, q["q"]
        assert all(s.notebook.endswith(".ipynb") and s.section for s in answer.sources)


@pytest.mark.parametrize("question", BANK["off_topic"])
def test_off_topic_and_empty_questions_are_refused_honestly(question, index):
    answer = ask(question, index=index)
    assert not answer.on_topic and answer.sources == []
    assert answer.text.startswith(("I can only help with this course", "Type a question"))
    assert "try asking" in answer.text.lower()


def test_ask_wants_a_string():
    with pytest.raises(TypeError, match="string"):
        ask(None)


# ------------------------------------------------------------------ rendering

def test_answer_renders_links_to_sections_in_notebooks_and_text_elsewhere(index):
    answer = ask("why does the loss use logsumexp instead of log of a sum of exp?", index=index)
    top = answer.sources[0]
    assert (top.notebook, top.section) == ("03_exercise_mdn_loss_student.ipynb", "2. The log of a sum of exponentials")
    assert top.link == "03_exercise_mdn_loss_student.ipynb#2.-The-log-of-a-sum-of-exponentials"
    page = answer._repr_html_()
    assert f'href="{top.link}"' in page and "<ol>" in page
    text = str(answer)
    assert "Read more:" in text and "03_exercise_mdn_loss_student.ipynb › 2. The log of a sum of exponentials" in text
    assert "<" not in text.split("Read more:")[1]


def test_heading_anchor_matches_jupyter():
    assert heading_anchor("3. Your turn: implement `mdn_loss`") == "3.-Your-turn:-implement-mdn_loss"
    assert heading_anchor("Summary") == "Summary"


def test_lesson_requests_use_the_lesson(index):
    idea = ask("explain the main idea of this lesson", 4, index=index)
    assert "Lesson 4" in idea.text and idea.sources[0].notebook == "04_training.ipynb"
    assert "colab-badge" not in idea.text
    summary = ask("summarise what I learned", "05_dreaming", index=index)
    assert [s.section for s in summary.sources] == ["Summary"] and "temperature" in summary.text
    helper = ask("help with the exercise", index=index)
    assert helper.via == "hint" and "hint(mdn_loss)" in helper.text


def test_the_lesson_the_student_is_in_is_preferred(index):
    question = "summary of what the model predicts"
    plain = {(h.notebook, h.section): h.score for h in index.search(question, k=100_000)}   # every match: a top-k cut moves with the boost
    in_two = {(h.notebook, h.section): h.score for h in index.search(question, k=100_000, notebook="02_the_model.ipynb")}
    assert plain.keys() == in_two.keys() and any(nb == "02_the_model.ipynb" for nb, _ in plain)
    for key, score in plain.items():
        factor = 1.15 if key[0] == "02_the_model.ipynb" else 1.0
        assert in_two[key] == pytest.approx(factor * score, rel=1e-5)


def test_tokenizer_meets_notation_and_plain_words():
    assert {"sigma", "standard", "deviat"} <= set(tokenize(r"$\sigma_k$"))
    assert tokenize("σ") == tokenize("sigma")
    assert "softmax" in tokenize("log_softmax") and "log_softmax" in tokenize("log_softmax")
    assert set(tokenize("NLL")) >= set(tokenize("negative log likelihood"))


def test_answer_type():
    assert isinstance(ask("what is the floor?"), Answer)


def test_single_letter_notation_is_understood(index):
    answer = ask("what is z?", index=index)
    assert answer.on_topic and answer.sources
    assert tokenize("the A of a") == [] and "compon" in tokenize("what is K?")


def test_cells_tagged_assistant_stay_out_of_the_corpus(tmp_path, monkeypatch):
    import nbformat

    (tmp_path / "notebooks").mkdir()
    (tmp_path / "narration" / "scripts").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson 9 · Test\n\nAbout forks."),
                nbformat.v4.new_markdown_cell("**Stuck?** Ask the assistant below.", metadata={"tags": ["assistant"]}),
                nbformat.v4.new_code_cell("chat(9)", metadata={"tags": ["assistant", "nbval-ignore-output"]})]
    nbformat.write(nb, tmp_path / "notebooks" / "09_test.ipynb")
    monkeypatch.setenv("MDN_COURSE_ROOT", str(tmp_path))
    texts = [p.text for p in load_passages(include_faq=False)]
    assert texts == ["# Lesson 9 · Test\n\nAbout forks."]
