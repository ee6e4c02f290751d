"""Helpers of the multi-source training tests: per-source data, language SFTs, and a callback
that checks which weights every forward pass, backward pass and optimizer step uses."""

import torch
from tiny_models import tiny_bert_config
from transformers import BertForTokenClassification, TrainerCallback

from sft import SFT, SparseDiff, maskable_parameter_names
from sft.application import applied_sfts

NUM_LABELS = 5
# Each source draws its tokens from its own id range, so a batch's inputs reveal its source.
TOKEN_RANGES = {"en": (5, 45), "mt": (45, 85), "fo": (85, 128)}


class TaggedTokens(torch.utils.data.Dataset):
    """Random token sequences of one source with random tag labels."""

    def __init__(self, source, size, seed, length=10):
        low, high = TOKEN_RANGES[source]
        generator = torch.Generator().manual_seed(seed)
        self.input_ids = torch.randint(low, high, (size, length), generator=generator)
        self.labels = torch.randint(0, NUM_LABELS, (size, length), generator=generator)

    def __len__(self):
        return len(self.input_ids)

    def __getitem__(self, index):
        return {"input_ids": self.input_ids[index], "labels": self.labels[index]}


def source_of(input_ids):
    for source, (low, high) in TOKEN_RANGES.items():
        if bool(((input_ids >= low) & (input_ids < high)).all()):
            return source
    raise AssertionError(f"batch mixes the token ranges of several sources: {input_ids}")


def tagger():
    torch.manual_seed(0)
    return BertForTokenClassification(tiny_bert_config(num_labels=NUM_LABELS))


def language_sft(model, seed, density=0.2):
    """A random SFT over the maskable parameters, as a language SFT would be."""
    generator = torch.Generator().manual_seed(seed)
    diffs = {}
    for name in maskable_parameter_names(model):
        shape = model.get_parameter(name).shape
        keep = torch.rand(shape, generator=generator) < density
        diffs[name] = SparseDiff.from_dense(torch.randn(shape, generator=generator) * 0.05 * keep)
    return SFT(diffs=diffs)


def build_source_sfts(model):
    # fo has no language SFT: its batches train on the bare model.
    return {"en": language_sft(model, seed=11), "mt": language_sft(model, seed=12), "fo": None}


def with_sft(weights, sft):
    """Return `weights` with the diffs of `sft` (or nothing, for None) added as apply adds them."""
    expected = {name: value.clone() for name, value in weights.items()}
    if sft is not None:
        for name, diff in sft.diffs.items():
            expected[name].put_(diff.indices, diff.values, accumulate=True)
    return expected


def snapshot(model):
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def mismatches(model, expected):
    return [name for name, p in model.named_parameters() if not torch.equal(p, expected[name])]


class SwapInspector(TrainerCallback):
    """Checks the weights seen by every forward pass, backward pass and optimizer step.

    `reference` contains the weights between optimizer steps. A forward or backward pass of a
    batch must see `reference` plus the diffs of the batch's source SFT, and the optimizer
    step must see `reference` with no SFT applied.
    """

    def __init__(self, model, source_sfts):
        self.model = model
        self.source_sfts = source_sfts
        self.reference = snapshot(model)
        self.source = None
        self.failures = []
        self.counts = {"forward": 0, "backward": 0, "optimizer": 0}
        self.step_sources = [[]]
        model.register_forward_pre_hook(self._before_forward, with_kwargs=True)
        model.bert.embeddings.word_embeddings.weight.register_hook(self._during_backward)
        model.classifier.weight.register_hook(self._during_backward)

    def _check(self, event, expected):
        wrong = mismatches(self.model, expected)
        if wrong:
            self.failures.append(f"{event} of a {self.source} batch: {wrong[:3]} differ")
        self.counts[event] += 1

    def _before_forward(self, module, args, kwargs):
        self.source = source_of(kwargs["input_ids"])
        self.step_sources[-1].append(self.source)
        self._check("forward", with_sft(self.reference, self.source_sfts[self.source]))

    def _during_backward(self, gradient):
        self._check("backward", with_sft(self.reference, self.source_sfts[self.source]))

    def on_train_begin(self, args, state, control, **kwargs):
        self.reference = snapshot(self.model)

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        if applied_sfts(self.model):
            self.failures.append(f"SFTs applied at an optimizer step: {applied_sfts(self.model)}")
        self._check("optimizer", self.reference)

    def on_step_end(self, args, state, control, **kwargs):
        self.reference = snapshot(self.model)
        self.step_sources.append([])
