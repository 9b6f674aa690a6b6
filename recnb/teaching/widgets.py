"""Interactive explorers of notebook 09: what each model recommends to a user, and where SASRec looks.

Both explorers keep their logic in plain methods and attributes (``show``,
``history``, ``recommendations``, ``matrix``, ``top_attended``, ``message``), so
tests drive them from Python by setting the controls' values; the widgets only
display that state. Bad input (an unknown user, a title that matches nothing,
a checkpoint for other data) becomes a message in the widget, never a traceback.
A checkpoint trained on another split of the same data (ties in time ordered
otherwise, so some users' held-out films moved) still loads, with a warning in
the widget; the users whose held-out films moved are marked as such.

>>> RecommendationExplorer(data, split, models)          # in a notebook cell: shows itself
>>> AttentionExplorer.from_checkpoint(path, data, split)
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from recnb.data.split import LeaveOneOutSplit, SplitCheck, check_split, evaluation_inputs, pad_histories
from recnb.errors import ExplorerInputError, InvalidArgumentError
from recnb.evaluation.comparison import display_name
from recnb.evaluation.evaluator import Model, top_columns
from recnb.models.recommend import recommend_items
from recnb.viz.baseline_plots import shorten


# ----------------------------------------------------------------------------- shared look-ups
def user_position(data, split: LeaveOneOutSplit, user_id) -> int:
    """Position in ``split`` of the user with MovieLens id ``user_id`` (as typed: text or number).

    Decimal digits of any script count (``42``, full-width ``４２``); anything else,
    superscripts such as ``²`` included, is an :class:`ExplorerInputError`.
    """
    text = str(user_id).strip()
    ids = data.user_ids[split.users]
    # isdecimal, not isdigit: '²' is a digit that int() refuses; every decimal digit has a value
    if not text.isdecimal():
        shown = text if len(text) <= 30 else text[:30] + "..."
        raise ExplorerInputError(f"User id {shown!r} is not a whole number: type a MovieLens user id such as "
                                 f"{int(ids[0])}.")
    digits = "".join(str(unicodedata.decimal(c)) for c in text).lstrip("0") or "0"
    found = np.flatnonzero(ids == int(digits)) if len(digits) <= 18 else []   # longer: beyond any id
    if len(found) == 0:
        shown = digits if len(digits) <= 30 else digits[:30] + "..."
        raise ExplorerInputError(f"No user {shown} in {data.name} after filtering (ids run {ids.min()} to "
                                 f"{ids.max()}; some may be filtered out). Or search by a film they watched.")
    return int(found[0])


def users_who_watched(data, split: LeaveOneOutSplit, title: str, limit: int = 200,
                      histories: list[np.ndarray] | None = None) -> tuple[str, list[int]]:
    """The film best matching ``title`` (case-insensitive substring; the most watched if several) and the
    MovieLens ids of up to ``limit`` users with it in their history (the input at test time)."""
    query = str(title).strip().lower()
    if not query:
        raise ExplorerInputError("Type part of a film title, e.g. 'Godfather'.")
    titles = data.items["title"].iloc[1:]
    matches = titles.index[titles.str.lower().str.contains(query, regex=False)].to_numpy()
    if len(matches) == 0:
        raise ExplorerInputError(f"No film title contains {title!r}. Try a shorter part of the title "
                                 "(titles are in English, e.g. 'Star Wars').")
    histories = evaluation_inputs(split, "test")[0] if histories is None else histories
    items = np.concatenate(histories)
    owners = np.repeat(np.arange(len(histories)), [len(h) for h in histories])   # user position of each item
    hit = np.isin(items, matches)
    item = int(np.bincount(items[hit], minlength=data.n_items + 1).argmax())      # the most watched match
    users = np.unique(owners[items == item])[:limit]
    return str(data.items.at[item, "title"]), [int(u) for u in data.user_ids[split.users[users]]]


def history_timeline(data, items: np.ndarray, last: int | None = None) -> pd.DataFrame:
    """A history (item ids, oldest first) as a table of title, year and genres: the most recent ``last`` films."""
    items = np.asarray(items)
    order = np.arange(1, len(items) + 1)
    if last is not None:
        items, order = items[-last:], order[-last:]
    table = data.items.loc[items, ["title", "year", "genres"]].reset_index(drop=True)
    table.insert(0, "#", order)
    table["item_id"] = items
    return table


def attention_heatmap(matrix: np.ndarray, labels: list[str], title: str):
    """A light heatmap for the widget (plain ``imshow``: answers faster than the notebooks' seaborn figure).

    Masked cells (exactly 0: the future) are left blank, so the causal triangle shows.
    """
    figure, ax = plt.subplots(figsize=(6.4, 5.4), dpi=80, layout="constrained")
    shown = np.ma.masked_where(matrix == 0, matrix)
    image = ax.imshow(shown, cmap="rocket_r", vmin=0, vmax=max(float(matrix.max()), 1e-9))
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set(xlabel="key: film attended to", ylabel="query: position predicting", title=title)
    ax.grid(False)
    figure.colorbar(image, ax=ax, shrink=0.7, label="attention weight")
    return figure


def _genres(value) -> str:
    return ", ".join(value) if isinstance(value, (tuple, list)) else str(value).replace("|", ", ")


def _error_html(text: str) -> str:
    return f'<div class="recnb-error" style="color:#b00020;font-weight:bold">⚠ {html.escape(text)}</div>'


def _note_html(text: str) -> str:
    return f'<div class="recnb-note" style="color:#555">{html.escape(text)}</div>'


def load_sasrec_or_message(checkpoint, data, split: LeaveOneOutSplit | None = None):
    """(model, None, check) from a checkpoint, or (None, message, None) saying why it cannot be used with ``data``.

    With ``split``, ``check`` (a :class:`recnb.data.split.SplitCheck`) says how ``split``
    compares with the split the model was trained on; it is None without ``split``
    or when the checkpoint records no split. A changed split does not stop the model
    loading: the explorers show it with :func:`split_warning`.
    """
    from recnb.models.checkpoints import load_checkpoint

    try:
        model, payload = load_checkpoint(checkpoint, data)
        check = check_split(payload["split"], data, split) if split is not None and "split" in payload else None
    except (FileNotFoundError, ValueError, RuntimeError, KeyError) as error:
        return None, f"SASRec is not available: {error}", None
    return model, None, check


def split_warning(check: SplitCheck | None, shown: str = "lists") -> str | None:
    """What an explorer says above everything else when SASRec was trained on another split (None if not).

    ``shown`` is what the explorer shows of SASRec: its ``"lists"`` or its ``"attention"``.
    """
    if check is None or check.same:
        return None
    if check.changed == 0:
        return f"SASRec was trained on other data: {check.describe()}. No user is marked."
    if shown == "lists":
        consequence = (f"Its lists are still shown, but for the {check.changed:,} users marked they are no fair test: "
                       "a ★ there may be a film SASRec was trained on.")
    else:
        consequence = (f"Its attention is still shown (weights are not a metric); the {check.changed:,} users marked "
                       "are those whose held-out films moved.")
    return (f"SASRec was trained on another split: {check.describe()}. {consequence} Evaluate it only on the "
            "unchanged users (recnb.models.checkpoints.load_checkpoint_for_split), or train a model on this data.")


def _check_for(check: SplitCheck | None, split: LeaveOneOutSplit) -> SplitCheck | None:
    """``check`` if it was made on ``split`` (its masks index this split's users), else a clear error."""
    if check is not None and check.users != split.n_users:
        raise InvalidArgumentError(f"split_check was made on a split of {check.users:,} users, but the explorer's "
                                   f"has {split.n_users:,}: check the split the explorer shows (check_split).")
    return check


def _user_split_note(check: SplitCheck | None, position: int) -> str | None:
    """The warning for one user whose held-out films moved (None for an unchanged user)."""
    if check is None or check.changed_users is None or not check.changed_users[position]:
        return None
    leaked = check.leaked_users is not None and check.leaked_users[position]
    return ("This user's held-out films are not the ones SASRec held out"
            + (": it was trained on the film now held out for test, so a ★ in its list is no fair hit."
               if leaked else ", so its list is no fair test for this user."))


class _Explorer:
    """What both explorers share: showing themselves in a notebook, and reporting bad input in the widget."""

    widget: W.Widget
    status: W.HTML
    message: str

    def _ipython_display_(self):
        display(self.widget)

    def _fail(self, text: str) -> None:
        self.message = text
        warning = getattr(self, "warning", None)   # a model-wide warning stays visible whatever is typed
        self.status.value = _error_html(text) + (_error_html(warning) if warning else "")


# ----------------------------------------------------------------------------- recommendations
class RecommendationExplorer(_Explorer):
    """Choose a user (by id, or via a film in their history); see their timeline and each model's top K.

    ``models`` maps names (``"markov"``, ``"sasrec"``, ...) to fitted models. Each list is
    :func:`recnb.models.recommend.recommend_items`'s, so equal scores follow the evaluator's tie rule
    (the lower item id first) as everywhere else. The held-out test film is marked ★ wherever a
    model ranks it in its top K.

    ``split_check`` (from :func:`recnb.data.split.check_split` on this ``split``) says
    whether the ``"sasrec"`` model was trained on another split. If so, its lists
    are still shown (a list is not a metric), under a warning, and for each user
    whose held-out films moved the user and SASRec's ★ are marked as no fair test.
    """

    def __init__(self, data, split: LeaveOneOutSplit, models: Mapping[str, Model], k: int = 10,
                 timeline_rows: int = 12, user_id=None, warning: str | None = None,
                 split_check: SplitCheck | None = None):
        self.data, self.split, self.models = data, split, dict(models)
        self.timeline_rows, self.split_check = timeline_rows, _check_for(split_check, split)
        sasrec_warning = split_warning(self.split_check) if "sasrec" in self.models else None
        self.warning = " ".join(w for w in (warning, sasrec_warning) if w) or None
        self.user_split_note: str | None = None   # set for a user whose held-out films moved
        self.histories, self.targets = evaluation_inputs(split, "test")
        first = int(data.user_ids[split.users[0]]) if user_id is None else user_id
        names = list(self.models)
        self.user = W.Text(value=str(first), description="User id", continuous_update=False)
        self.search = W.Text(value="", placeholder="part of a title, e.g. Alien", description="Film",
                             continuous_update=False)
        self.matches = W.Dropdown(options=[], description="Watched by", disabled=True)
        self.k = W.Dropdown(options=[5, 10, 20], value=k if k in (5, 10, 20) else 10, description="Top K")
        self.shown_models = W.SelectMultiple(options=[(display_name(n), n) for n in names], value=tuple(names),
                                             description="Models", rows=min(6, len(names)))
        self.status, self.timeline, self.lists = W.HTML(), W.HTML(), W.HTML()
        for widget, name in [(self.user, "user"), (self.search, "search"), (self.matches, "matches"),
                             (self.k, "k"), (self.status, "status"), (self.timeline, "timeline"),
                             (self.lists, "lists")]:
            widget.add_class(f"recnb-rec-{name}")
        self.widget = W.VBox([
            W.HBox([W.VBox([self.user, self.search, self.matches]), W.VBox([self.k, self.shown_models])]),
            self.status, self.timeline, self.lists,
        ])
        self.widget.add_class("recnb-recommendation-explorer")
        self.user_id: int | None = None
        self.history: pd.DataFrame = pd.DataFrame()
        self.recommendations: dict[str, pd.DataFrame] = {}
        self.notes: list[str] = []   # what the status says about the user, as plain text
        self.message = ""
        self.user.observe(lambda change: self.show(change["new"]), names="value")
        self.search.observe(lambda change: self.find(change["new"]), names="value")
        self.matches.observe(self._on_match, names="value")
        self.k.observe(lambda change: self.show(self.user.value), names="value")
        self.shown_models.observe(lambda change: self.show(self.user.value), names="value")
        self.show(first)

    @classmethod
    def from_checkpoint(cls, checkpoint, data, split: LeaveOneOutSplit, baselines: Mapping[str, Model],
                        **options) -> RecommendationExplorer:
        """The ``baselines`` plus SASRec from ``checkpoint``; if it cannot be loaded for ``data``, the
        baselines alone, with the reason shown in the widget. If it was trained on another split of
        ``data``, SASRec under a warning, its affected users marked (see the class)."""
        model, message, check = load_sasrec_or_message(checkpoint, data, split)
        models = dict(baselines) if model is None else {**baselines, "sasrec": model}
        return cls(data, split, models, warning=message, split_check=check, **options)

    def find(self, title: str) -> None:
        """List the users who watched the film matching ``title``; choosing one shows them."""
        if not str(title).strip():  # the box was cleared: nothing to search, nothing wrong
            self.matches.options, self.matches.disabled = [], True
            return
        try:
            film, users = users_who_watched(self.data, self.split, title, histories=self.histories)
        except ExplorerInputError as error:
            self.matches.options, self.matches.disabled = [], True
            self._fail(str(error))
            return
        if not users:
            self.matches.options, self.matches.disabled = [], True
            self._fail(f"Nobody in the test histories watched {film}.")
            return
        self.matches.options = [(f"user {u}", u) for u in users]
        self.matches.disabled = False
        self.status.value = _note_html(f"{len(users)} users watched {film}"
                                       f"{' (first 200 listed)' if len(users) == 200 else ''}: choose one.")

    def _on_match(self, change) -> None:
        if change["new"] is not None:
            self.user.value = str(change["new"])  # triggers show()

    def show(self, user_id) -> None:
        """Show the timeline and every chosen model's top K for ``user_id`` (a MovieLens user id)."""
        try:
            position = user_position(self.data, self.split, user_id)
        except ExplorerInputError as error:
            self._fail(str(error))
            self.timeline.value, self.lists.value = "", ""
            self.history, self.recommendations, self.user_id = pd.DataFrame(), {}, None
            self.user_split_note = None
            return
        self.user_id, self.position = int(self.data.user_ids[self.split.users[position]]), position
        history, target = self.histories[position], int(self.targets[position])
        self.history = history_timeline(self.data, history, self.timeline_rows)
        self.recommendations = {name: recommend_items(self.models[name], self.data, history, self.k.value)
                                for name in self.shown_models.value}
        self.target = target
        self.message = ""
        notes = [f"User {self.user_id}: {len(history)} films watched; the held-out next film is "
                 f"{self.data.items.at[target, 'title']} (★ where a model ranks it in its top {self.k.value})."]
        if len(history) < 5:
            notes.append("A short history: the models have little to go on, and the sequence models lean on "
                         "the last film or on popularity.")
        self.notes = notes
        note = _user_split_note(self.split_check, position) if "sasrec" in self.models else None
        self.user_split_note = None if note is None else f"User {self.user_id}: {note}"
        self.status.value = ("".join(_error_html(w) for w in (self.warning, self.user_split_note) if w)
                             + "".join(_note_html(n) for n in notes))
        self.timeline.value = self._timeline_html()
        self.lists.value = self._lists_html()

    def _timeline_html(self) -> str:
        total = len(self.histories[self.position])
        rows = "".join(
            f"<tr><td>{r['#']}</td><td>{html.escape(str(r['title']))}</td><td>{_year(r['year'])}</td>"
            f"<td>{html.escape(_genres(r['genres']))}</td></tr>" for _, r in self.history.iterrows())
        hidden = total - len(self.history)
        head = f"<b>History, oldest to newest</b>{f' (the last {len(self.history)} of {total})' if hidden else ''}"
        return (f"{head}<table class='recnb-timeline' style='font-size:90%'>"
                f"<tr><th>#</th><th>title</th><th>year</th><th>genres</th></tr>{rows}</table>")

    def _lists_html(self) -> str:
        columns = []
        for name, table in self.recommendations.items():
            hit = table.index[table["item_id"] == self.target]
            caption = f"{display_name(name)}: " + (f"★ at rank {hit[0]}" if len(hit) else "held-out film not in list")
            if name == "sasrec" and self.user_split_note:
                caption += " (no fair test for this user: see the warning)"
            rows = "".join(
                f"<tr style='{'background:#ffe08a;font-weight:bold' if r['item_id'] == self.target else ''}'>"
                f"<td>{rank}{' ★' if r['item_id'] == self.target else ''}</td>"
                f"<td title='{html.escape(_genres(r['genres']))}'>{html.escape(shorten(r['title'], 34))}</td>"
                f"<td>{r['score']:.3g}</td></tr>" for rank, r in table.iterrows())
            columns.append(f"<div class='recnb-list' data-model='{name}' style='margin:0 14px 10px 0'>"
                           f"<b>{html.escape(caption)}</b><table style='font-size:85%'>"
                           f"<tr><th>#</th><th>film</th><th>score</th></tr>{rows}</table></div>")
        return f"<div style='display:flex;flex-wrap:wrap'>{''.join(columns)}</div>"


def _year(value) -> str:
    return "" if pd.isna(value) else str(int(value))


# ----------------------------------------------------------------------------- attention
class AttentionExplorer(_Explorer):
    """Choose a user, a layer and a head; see SASRec's attention over the last N films of their history.

    The heatmap's rows are the positions predicting (queries), its columns the films
    attended to (keys); above the diagonal is blank because the causal mask hides the
    future. Below, the films the last position (the one that makes the recommendation)
    attends to most. Weights are computed over the whole history the model reads; the
    window shows the last N, so a row can sum to less than 1 where older films take the rest.

    ``split_check`` (from :func:`recnb.data.split.check_split` on this ``split``) says whether
    the model was trained on another split. If so, its attention is still shown (weights
    are not a metric), under a warning, and each user whose held-out films moved is marked.
    """

    def __init__(self, model, data, split: LeaveOneOutSplit, last_n: int = 15, user_id=None,
                 message: str | None = None, split_check: SplitCheck | None = None):
        self.model, self.data, self.split = model, data, split
        self.split_check = _check_for(split_check, split)
        self.warning = split_warning(self.split_check, "attention")
        self.user_split_note: str | None = None   # set for a user whose held-out films moved
        self.histories, _ = evaluation_inputs(split, "test")
        n_layers = model.config.n_layers if model is not None else 1
        n_heads = model.config.n_heads if model is not None else 1
        first = int(data.user_ids[split.users[0]]) if user_id is None else user_id
        self.user = W.Text(value=str(first), description="User id", continuous_update=False)
        self.layer = W.Dropdown(options=[(f"layer {i + 1}", i) for i in range(n_layers)], value=n_layers - 1,
                                description="Layer")
        self.head = W.Dropdown(options=[(f"head {i + 1}", i) for i in range(n_heads)], value=0, description="Head")
        self.last_n = W.IntSlider(value=last_n, min=3, max=40, description="Last N", continuous_update=False)
        self.status, self.top_list, self.figure_output = W.HTML(), W.HTML(), W.Output()
        for widget, name in [(self.user, "user"), (self.layer, "layer"), (self.head, "head"),
                             (self.last_n, "last-n"), (self.status, "status"), (self.top_list, "top"),
                             (self.figure_output, "heatmap")]:
            widget.add_class(f"recnb-att-{name}")
        self.widget = W.VBox([W.HBox([self.user, self.layer, self.head, self.last_n]), self.status,
                              W.HBox([self.figure_output, self.top_list])])
        self.widget.add_class("recnb-attention-explorer")
        self.user_id: int | None = None
        self.weights: list[np.ndarray] = []        # per layer: (H, L, L) for the current user
        self.items = np.zeros(0, dtype=np.int64)   # the films the model reads, oldest first
        self.matrix = np.zeros((0, 0))
        self.labels: list[str] = []
        self.top_attended = pd.DataFrame()
        self.figure = None
        self.message = ""
        if model is None:
            self._fail(message or "No model to inspect.")
            for control in (self.user, self.layer, self.head, self.last_n):
                control.disabled = True
            return
        self.user.observe(lambda change: self.show(change["new"]), names="value")
        for control in (self.layer, self.head, self.last_n):
            control.observe(lambda change: self.draw(), names="value")
        self.show(first)

    @classmethod
    def from_checkpoint(cls, checkpoint, data, split: LeaveOneOutSplit, **options) -> AttentionExplorer:
        """An explorer for a saved SASRec; if it cannot be loaded for ``data``, one that says why. If it was
        trained on another split of ``data``, the explorer under a warning, its affected users marked."""
        model, message, check = load_sasrec_or_message(checkpoint, data, split)
        return cls(model, data, split, message=message, split_check=check, **options)

    def show(self, user_id) -> None:
        """Run the model once on ``user_id``'s history (kept for every layer and head), then draw."""
        try:
            position = user_position(self.data, self.split, user_id)
        except ExplorerInputError as error:
            self._fail(str(error))
            self.top_list.value, self.matrix, self.top_attended = "", np.zeros((0, 0)), pd.DataFrame()
            self.user_id, self.user_split_note = None, None
            self.figure_output.clear_output()
            return
        self.user_id, self.position = int(self.data.user_ids[self.split.users[position]]), position
        note = _user_split_note(self.split_check, position)
        self.user_split_note = None if note is None else f"User {self.user_id}: {note}"
        self.items = self.histories[position][-self.model.config.max_len:]
        self.model.eval()
        with torch.inference_mode():
            _, attention = self.model(pad_histories([self.items]), return_attention=True)
        self.weights = [layer[0].float().numpy() for layer in attention]   # each (H, L, L)
        self.draw()

    def draw(self) -> None:
        """Redraw for the current layer, head and window (no new forward pass)."""
        if self.user_id is None:
            return
        length = len(self.items)
        window = min(self.last_n.value, length)
        weights = self.weights[self.layer.value][self.head.value]
        self.matrix = weights[-window:, -window:]
        shown = self.items[-window:]
        self.labels = [shorten(t, 28) for t in self.data.titles(shown)]
        total = len(self.histories[self.position])
        read = f"the last {length} of its {total} films (max_len)" if total > length else f"all {length} films"
        notes = [f"User {self.user_id}: the model reads {read}; showing the last {window}."]
        if length < self.last_n.value:
            notes.append(f"This history has only {length} film{'s' if length != 1 else ''}, fewer than the "
                         f"{self.last_n.value} asked for: all are shown.")
        if length == 1:
            notes.append("With one film the only thing to attend to is itself (weight 1).")
        self.message = ""
        self.status.value = ("".join(_error_html(w) for w in (self.warning, self.user_split_note) if w)
                             + "".join(_note_html(n) for n in notes))
        last = weights[-1]                                        # the query that makes the recommendation
        order = top_columns(torch.from_numpy(last)[None], min(8, length))[0].numpy()   # ties: the older film first
        self.top_attended = pd.DataFrame({
            "positions back": length - 1 - order,
            "title": self.data.titles(self.items[order]),
            "weight": last[order],
        })
        rows = "".join(f"<tr><td>{r['positions back']}</td><td>{html.escape(shorten(r['title'], 40))}</td>"
                       f"<td>{r['weight']:.3f}</td></tr>" for _, r in self.top_attended.iterrows())
        self.top_list.value = (
            f"<b>The last position attends most to</b> (layer {self.layer.value + 1}, head {self.head.value + 1})"
            f"<table class='recnb-top-attended' style='font-size:90%'><tr><th>back</th><th>film</th>"
            f"<th>weight</th></tr>{rows}</table><small>0 back = the film just watched</small>")
        figure = attention_heatmap(self.matrix, self.labels,
                                   f"User {self.user_id}: layer {self.layer.value + 1}, "
                                   f"head {self.head.value + 1}, last {window} films")
        self.figure = figure
        if _in_ipython():  # outside a kernel (tests, scripts) there is nowhere to show it
            with self.figure_output:
                self.figure_output.clear_output(wait=True)
                display(figure)
        plt.close(figure)


def _in_ipython() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None
