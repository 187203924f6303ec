"""The workbook's own material, above the engine, the methods and the metrics: synthetic
scenes with ground truth and video files (`synthetic`, `data`), the demo models and their
training (`models`, `training`), the hyper-parameter sweep (`sweep`), architecture figures
(`architecture`), time in a clip (`temporal`) and the notebooks' reports (`report`)."""
