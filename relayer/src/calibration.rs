//! Calibration of the pHash threshold (in progress).
