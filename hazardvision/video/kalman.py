"""A constant-velocity Kalman filter on boxes, with time in seconds so that frame gaps may vary.

The state is `(cx, cy, a, h, vcx, vcy, va, vh)`: box centre, aspect ratio (width / height),
height and their velocities per second, as in ByteTrack and DeepSORT. Noise scales with the box
height, so that near and far objects are filtered alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]

_MIN_HEIGHT = 1e-3  # keeps the aspect ratio finite for degenerate boxes


def xyxy_to_xyah(box: NDArray[np.floating]) -> Vector:
    """Centre x, centre y, aspect ratio and height of one xyxy box."""
    x1, y1, x2, y2 = (float(value) for value in box)
    height = max(y2 - y1, _MIN_HEIGHT)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / height, height])


def xyah_to_xyxy(state: Vector) -> Vector:
    """The xyxy box of a state (or measurement); negative sizes are clipped to empty."""
    cx, cy, aspect, height = (float(value) for value in state[:4])
    height = max(height, 0.0)
    width = max(aspect * height, 0.0)
    return np.array([cx - width / 2, cy - height / 2, cx + width / 2, cy + height / 2])


@dataclass(frozen=True)
class BoxKalmanFilter:
    """Predict and correct box states; the noise levels are relative to the box height.

    The defaults reproduce ByteTrack's per-frame noise at 30 frames per second: process noise
    grows linearly with the time since the last step (a random walk), so a gap of two seconds
    widens the uncertainty as sixty small steps would.
    """

    measurement_std: float = 1 / 20
    """Detector box noise, as a fraction of the height."""
    position_std_per_second: float = 0.27
    """Random-walk noise of the position per square-root second, as a fraction of the height."""
    velocity_std_per_second: float = 1.0
    """Random-walk noise of the velocity per square-root second, in heights per second."""
    initial_velocity_std: float = 2.0
    """Uncertainty of a new track's velocity, in heights per second."""

    def initiate(self, measurement: Vector) -> tuple[Vector, Matrix]:
        """Mean and covariance of a new track from its first (cx, cy, a, h) measurement."""
        height = max(float(measurement[3]), _MIN_HEIGHT)
        mean = np.concatenate([measurement, np.zeros(4)])
        position = 2 * self.measurement_std * height
        velocity = self.initial_velocity_std * height
        std = np.array([position, position, 1e-2, position, velocity, velocity, 1e-5, velocity])
        return mean, np.diag(std**2)

    def predict(self, mean: Vector, covariance: Matrix, dt: float) -> tuple[Vector, Matrix]:
        """The state `dt` seconds later."""
        if dt <= 0:
            return mean, covariance
        motion = np.eye(8)
        motion[:4, 4:] = dt * np.eye(4)
        height = max(float(mean[3]), _MIN_HEIGHT)
        position = self.position_std_per_second * height
        velocity = self.velocity_std_per_second * height
        variance = np.array([position, position, 1e-2, position, velocity, velocity, 1e-5, velocity]) ** 2 * dt
        return motion @ mean, motion @ covariance @ motion.T + np.diag(variance)

    def update(self, mean: Vector, covariance: Matrix, measurement: Vector) -> tuple[Vector, Matrix]:
        """Correct a predicted state with a (cx, cy, a, h) measurement."""
        std = self.measurement_std * max(float(mean[3]), _MIN_HEIGHT)
        noise = np.diag(np.array([std, std, 1e-1, std]) ** 2)
        projected = covariance[:4, :4] + noise
        cross = covariance[:, :4]
        gain = np.linalg.solve(projected, cross.T).T  # projected is symmetric positive definite
        innovation = measurement - mean[:4]
        new_mean = mean + gain @ innovation
        new_covariance = covariance - gain @ projected @ gain.T
        return new_mean, new_covariance
