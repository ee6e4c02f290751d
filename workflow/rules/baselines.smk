# Stage 6: baselines that are not SFTs (MAD-X adapters). The SFT-based baselines (full
# fine-tuning, random masks, dense composition, no L1, the sparsity sweep) are variants of the
# SFT rules, chosen in the config.
