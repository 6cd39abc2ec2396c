//! The devnet's nodes: who declares which GPU, and how they are started in this process.
//!
//! Selection on chain: an image task draws three nodes from every available node with enough
//! VRAM; a text task draws three nodes of one declared GPU model. So the fleet has three nodes of
//! `devnet-gpu-a` (the text task needs three of one model) and one of `devnet-gpu-b` (image tasks
//! compare across models). With `--cheater`, a counterfeiting node joins and the image task asks
//! for 16 GiB of VRAM, which exactly three nodes declare — the cheater among them — so it is
//! certainly selected, not by luck.

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use verinfer_devchain::NodeEnv;
use verinfer_node::{Behaviour, IdentityOverride, NodeConfig, TestingConfig};

/// The GPU model the text task requires (declared by three nodes).
pub(crate) const TEXT_GPU_MODEL: &str = "devnet-gpu-a";
const OTHER_GPU_MODEL: &str = "devnet-gpu-b";
const SMALL_VRAM_MIB: u32 = 8 * 1024;
const LARGE_VRAM_MIB: u32 = 24 * 1024;

/// One node of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeSpec {
    /// Its name in the devnet's output and state directory.
    pub(crate) name: String,
    /// The GPU model it declares.
    pub(crate) gpu_model: &'static str,
    /// The VRAM it declares.
    pub(crate) vram_mib: u32,
    /// Honest, or the cheater.
    pub(crate) behaviour: Behaviour,
}

/// The fleet: three `devnet-gpu-a` nodes (one with 24 GiB), one `devnet-gpu-b` node with 24 GiB,
/// with `cheater` a counterfeiting `devnet-gpu-b` node with 24 GiB, and `extra` more honest
/// `devnet-gpu-b` nodes with 8 GiB (`x1`, `x2`, …) for the load benchmark.
pub(crate) fn fleet(cheater: bool, extra: u16) -> Vec<NodeSpec> {
    let node = |name: &str, gpu_model, vram_mib, behaviour| NodeSpec {
        name: name.to_owned(),
        gpu_model,
        vram_mib,
        behaviour,
    };
    let mut nodes = vec![
        node("a1", TEXT_GPU_MODEL, SMALL_VRAM_MIB, Behaviour::Honest),
        node("a2", TEXT_GPU_MODEL, SMALL_VRAM_MIB, Behaviour::Honest),
        node("a3", TEXT_GPU_MODEL, LARGE_VRAM_MIB, Behaviour::Honest),
        node("b1", OTHER_GPU_MODEL, LARGE_VRAM_MIB, Behaviour::Honest),
    ];
    if cheater {
        nodes.push(node(
            "cheater",
            OTHER_GPU_MODEL,
            LARGE_VRAM_MIB,
            Behaviour::Counterfeit,
        ));
    }
    for index in 1..=extra {
        nodes.push(node(
            &format!("x{index}"),
            OTHER_GPU_MODEL,
            SMALL_VRAM_MIB,
            Behaviour::Honest,
        ));
    }
    nodes
}

/// VRAM the image task asks for: with the cheater, 16 GiB, which only the three 24 GiB nodes
/// (the cheater included) can serve; otherwise 8 GiB, which every node can.
pub(crate) fn image_min_vram_mib(cheater: bool) -> u32 {
    if cheater { 16 * 1024 } else { SMALL_VRAM_MIB }
}

/// The configuration of `spec`'s node, signing with `key`, its state in `<nodes_dir>/<name>`.
pub(crate) fn node_config(
    spec: &NodeSpec,
    key: &PrivateKeySigner,
    env: &NodeEnv,
    nodes_dir: &Path,
) -> NodeConfig {
    let identity = IdentityOverride {
        gpu_model: spec.gpu_model.to_owned(),
        vram_mib: spec.vram_mib,
    };
    NodeConfig {
        testing: TestingConfig {
            behaviour: spec.behaviour,
            ..TestingConfig::default()
        },
        ..env.node_config(key.clone(), nodes_dir.join(&spec.name), Some(identity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Verinfer._nodeTier` and `_requiredTier`: tier t holds [2^t, 2^(t+1)) GiB; a task needing
    /// V MiB takes nodes from the smallest tier whose every member has V.
    fn node_tier(vram_mib: u32) -> u32 {
        let mut gib = vram_mib >> 10;
        let mut tier = 0;
        while gib > 1 && tier < 7 {
            gib >>= 1;
            tier += 1;
        }
        tier
    }

    fn required_tier(min_vram_mib: u32) -> u32 {
        let mut tier = 0;
        while tier < 7 && (1024u32 << tier) < min_vram_mib {
            tier += 1;
        }
        tier
    }

    fn eligible_for_image(fleet: &[NodeSpec], cheater: bool) -> Vec<&str> {
        let required = required_tier(image_min_vram_mib(cheater));
        fleet
            .iter()
            .filter(|node| node_tier(node.vram_mib) >= required)
            .map(|node| node.name.as_str())
            .collect()
    }

    #[test]
    fn with_the_cheater_exactly_three_nodes_can_take_the_image_task() {
        for extra in [0, 3] {
            let fleet = fleet(true, extra);
            assert_eq!(eligible_for_image(&fleet, true), ["a3", "b1", "cheater"]);
        }
    }

    #[test]
    fn without_the_cheater_every_node_can_take_the_image_task() {
        let fleet = fleet(false, 2);
        assert_eq!(
            eligible_for_image(&fleet, false),
            ["a1", "a2", "a3", "b1", "x1", "x2"]
        );
    }

    #[test]
    fn three_nodes_share_the_text_tasks_gpu_model() {
        for cheater in [false, true] {
            let same_model = fleet(cheater, 2)
                .iter()
                .filter(|node| node.gpu_model == TEXT_GPU_MODEL)
                .count();
            assert_eq!(same_model, 3);
        }
    }
}
