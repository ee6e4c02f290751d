import itertools
from collections import Counter

import pytest
import torch
from accelerate.data_loader import BatchSamplerShard

from sft import (
    BATCH_SOURCE_KEY,
    MultiSourceBatchSampler,
    MultiSourceCollator,
    MultiSourceDataset,
    SourceExample,
)


def numbered(source, size):
    """Examples that name their source and position, so that tests can trace them."""
    return [{"source": source, "position": position} for position in range(size)]


@pytest.fixture
def dataset():
    # Sizes differ on purpose: 10, 3 (shown twice per epoch) and 5 examples.
    return MultiSourceDataset(
        {"en": numbered("en", 10), "mt": numbered("mt", 3), "fo": numbered("fo", 5)},
        upsampling={"mt": 2},
    )


def sources_of(dataset, batch):
    return {dataset[index].source for index in batch}


def test_dataset_length_counts_repeats(dataset):
    assert len(dataset) == 10 + 3 * 2 + 5
    assert dataset.source_names == ["en", "mt", "fo"]
    assert dataset.source_range("mt") == range(10, 16)
    assert dataset.source_size("mt") == 3


def test_dataset_maps_indices_to_sources(dataset):
    assert dataset[0] == SourceExample("en", {"source": "en", "position": 0})
    assert dataset[9].example == {"source": "en", "position": 9}
    # The second repetition of mt starts over at its first example.
    assert [dataset[index].example["position"] for index in range(10, 16)] == [0, 1, 2, 0, 1, 2]
    assert dataset[16] == SourceExample("fo", {"source": "fo", "position": 0})
    with pytest.raises(IndexError, match="out of range"):
        dataset[len(dataset)]


def test_dataset_repr_shows_sizes(dataset):
    assert repr(dataset) == "MultiSourceDataset(en: 10, mt: 3 x2, fo: 5)"


@pytest.mark.parametrize(
    "sources, upsampling, error, message",
    [
        ({}, None, ValueError, "non-empty mapping"),
        ({"en": []}, None, ValueError, "source 'en' has no examples"),
        ({"en": [1]}, {"mt": 2}, ValueError, "not in sources"),
        ({"en": [1]}, {"en": 0}, ValueError, r"upsampling\['en'\] must be a positive integer"),
        ({"en": [1]}, {"en": 1.5}, ValueError, r"upsampling\['en'\] must be a positive integer"),
        ({"": [1]}, None, TypeError, "non-empty strings"),
        ({"en": iter([1])}, None, TypeError, "must have a length"),
    ],
)
def test_dataset_rejects_invalid_input(sources, upsampling, error, message):
    with pytest.raises(error, match=message):
        MultiSourceDataset(sources, upsampling=upsampling)


def test_training_batches_come_from_one_source(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3)
    batches = list(sampler)
    for batch in batches:
        assert len(sources_of(dataset, batch)) == 1, batch
    # ceil(10 / 4) + ceil(6 / 4) + ceil(5 / 4)
    assert len(batches) == len(sampler) == 3 + 2 + 2


def test_training_epoch_shows_each_example_per_upsampling(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3)
    seen = Counter()
    for batch in sampler:
        for index in batch:
            item = dataset[index]
            seen[item.source, item.example["position"]] += 1
    expected = {("en", p): 1 for p in range(10)}
    expected.update({("mt", p): 2 for p in range(3)})
    expected.update({("fo", p): 1 for p in range(5)})
    assert dict(seen) == expected


def test_only_last_batch_of_a_source_is_partial(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3)
    sizes = {name: [] for name in dataset.source_names}
    for batch in sampler:
        (source,) = sources_of(dataset, batch)
        sizes[source].append(len(batch))
    assert sorted(sizes["en"]) == [2, 4, 4]
    assert sorted(sizes["mt"]) == [2, 4]
    assert sorted(sizes["fo"]) == [1, 4]


def test_drop_last_drops_partial_batches(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3, drop_last=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 2 + 1 + 1
    assert all(len(batch) == 4 for batch in batches)


def test_training_order_interleaves_sources(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=2, shuffle=True, seed=0)
    order = [sources_of(dataset, batch).pop() for batch in sampler]
    runs = 1 + sum(1 for first, second in itertools.pairwise(order) if first != second)
    # Sorted by source there would be 3 runs.
    assert runs > 3, order


def test_training_order_depends_on_seed_and_epoch(dataset):
    first = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3)
    second = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3)
    other_seed = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=4)
    epoch0, epoch1 = list(first), list(first)
    assert epoch0 != epoch1
    assert list(second) == epoch0
    second.set_epoch(1)
    assert list(second) == epoch1
    assert list(other_seed) != epoch0


def test_evaluation_order_is_fixed(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=False)
    expected = [
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
        [10, 11, 12, 13],
        [14, 15],
        [16, 17, 18, 19],
        [20],
    ]
    assert list(sampler) == expected
    sampler.set_epoch(5)
    assert list(sampler) == expected


def test_accelerate_shards_keep_batches_whole(dataset):
    sampler = MultiSourceBatchSampler(dataset, batch_size=4, shuffle=True, seed=3)
    everything = sampler.batches(0)
    shards = []
    for process in range(2):
        sampler.set_epoch(0)
        shards.append(list(BatchSamplerShard(sampler, num_processes=2, process_index=process)))
    # 7 batches: the processes get 4 each, the last one a repeat of a whole first batch.
    assert [len(shard) for shard in shards] == [4, 4]
    for shard in shards:
        for batch in shard:
            assert batch in everything
            assert len(sources_of(dataset, batch)) == 1
    assert sorted(map(tuple, shards[0] + shards[1][:-1])) == sorted(map(tuple, everything))


@pytest.mark.parametrize(
    "batch_size, seed, error",
    [(0, 0, ValueError), (2.0, 0, ValueError), (True, 0, ValueError), (2, "0", TypeError)],
)
def test_sampler_rejects_invalid_arguments(dataset, batch_size, seed, error):
    with pytest.raises(error):
        MultiSourceBatchSampler(dataset, batch_size=batch_size, shuffle=True, seed=seed)


def test_sampler_needs_multi_source_dataset():
    with pytest.raises(TypeError, match="MultiSourceDataset"):
        MultiSourceBatchSampler([1, 2, 3], batch_size=2, shuffle=False)


def test_collator_adds_the_source():
    collator = MultiSourceCollator()
    batch = collator(
        [
            SourceExample("mt", {"input_ids": torch.tensor([5, 6])}),
            SourceExample("mt", {"input_ids": torch.tensor([7, 8])}),
        ]
    )
    assert batch[BATCH_SOURCE_KEY] == "mt"
    assert torch.equal(batch["input_ids"], torch.tensor([[5, 6], [7, 8]]))


def test_collator_rejects_mixed_sources():
    collator = MultiSourceCollator()
    with pytest.raises(ValueError, match=r"one source, got examples of \['en', 'mt'\]"):
        collator(
            [
                SourceExample("mt", {"x": torch.tensor(1)}),
                SourceExample("en", {"x": torch.tensor(2)}),
            ]
        )


def test_collator_rejects_plain_examples():
    with pytest.raises(TypeError, match="SourceExample"):
        MultiSourceCollator()([{"x": torch.tensor(1)}])


def test_collator_needs_a_mapping_batch():
    collator = MultiSourceCollator(lambda examples: torch.stack([e["x"] for e in examples]))
    with pytest.raises(TypeError, match="mutable mapping"):
        collator([SourceExample("mt", {"x": torch.tensor(1)})])
