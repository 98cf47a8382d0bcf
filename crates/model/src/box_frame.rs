//! The coordinate frame a model family writes boxes in, and the IoU reward set to read it.
//!
//! A grounding answer is only as right as the frame it is read in: Qwen2.5-VL answers in pixels
//! of the image its processor resized, InternVL and Qwen3-VL in 0..1000 relative coordinates.
//! The trainer, the eval harness and SFT all take the frame from here so the policy is asked,
//! taught and rewarded in one frame.

use mixed_r1_reward::iou::Frame;
use mixed_r1_reward::RewardConfig;

use crate::config::Arch;
use crate::model::Model;

/// The frame a model family writes boxes in when not told otherwise; `None` (the gold's frame)
/// for the text models.
pub fn model_box_frame(arch: Arch) -> Option<Frame> {
    match arch {
        Arch::InternVl | Arch::Qwen3Vl => Some(Frame::Rel1000),
        Arch::Qwen25Vl => Some(Frame::AbsResized),
        Arch::Qwen2 | Arch::Llama => None,
    }
}

/// Sets the IoU reward's predicted-box frame to the model's ([`model_box_frame`]) unless the
/// config names one; for `abs_resized` the smart-resize parameters come from the model's own
/// image processor, so a box is mapped back exactly as the image was resized.
pub fn follow_model_frame(reward: &mut RewardConfig, model: &Model) {
    if reward.iou.pred_frame.is_some() {
        return;
    }
    reward.iou.pred_frame = model_box_frame(model.config.arch);
    if reward.iou.pred_frame == Some(Frame::AbsResized) {
        if let Some(p) = &model.processor {
            reward.iou.factor = p.factor() as u32;
            reward.iou.min_pixels = p.min_pixels;
            reward.iou.max_pixels = p.max_pixels;
        }
    }
}
