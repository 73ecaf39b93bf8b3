"""Fine-tuning: training files, dataset validation, LoRA jobs and their adapters."""
