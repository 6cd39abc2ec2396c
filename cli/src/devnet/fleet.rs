//! The devnet's nodes: who declares which GPU, and how they are started in this process.
//!
//! Selection on chain: an image task draws three nodes from every available node whose GPU
//! model (its VRAM fixed by the owner's registry) has the VRAM the task asks for; a text task
//! draws three nodes of the GPU model it names. So the fleet has three nodes of `devnet-gpu-a`
//! (8 GiB: the text task needs three of one model) and two of `devnet-gpu-b` (24 GiB: image
//! tasks compare across models). With `--cheater`, a counterfeiting `devnet-gpu-b` node joins and
//! the image task asks for 16 GiB of VRAM, which exactly three nodes have — the cheater among
//! them — so it is certainly drawn, not by luck. With `--cheater --sampled` the cheater starts
//! alone and is the first node of sampled image tasks asking for 16 GiB (it is the only node
//! then); once the sample draw checks one, the honest nodes start and `b1` and `b2`, the only
//! other nodes with 16 GiB, check it. The load benchmark's extra nodes are `devnet-gpu-c`
//! (8 GiB). The devnet registers these models before the nodes join.

use std::path::Path;

use alloy::signers::local::PrivateKeySigner;
use verinfer_devchain::NodeEnv;
use verinfer_node::{Behaviour, IdentityOverride, NodeConfig, TestingConfig};

/// The GPU model the text task names (three nodes have it).
pub(crate) const TEXT_GPU_MODEL: &str = "devnet-gpu-a";
const LARGE_GPU_MODEL: &str = "devnet-gpu-b";
const EXTRA_GPU_MODEL: &str = "devnet-gpu-c";
const SMALL_VRAM_MIB: u32 = 8 * 1024;
const LARGE_VRAM_MIB: u32 = 24 * 1024;

/// One node of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeSpec {
    /// Its name in the devnet's output and state directory.
    pub(crate) name: String,
    /// The GPU model it declares.
    pub(crate) gpu_model: &'static str,
    /// The VRAM of its GPU model (one per model, as the registry holds it).
    pub(crate) vram_mib: u32,
    /// Honest, or the cheater.
    pub(crate) behaviour: Behaviour,
}

/// The fleet: three `devnet-gpu-a` nodes (8 GiB), two `devnet-gpu-b` nodes (24 GiB), with
/// `cheater` a counterfeiting `devnet-gpu-b` node, and `extra` more honest `devnet-gpu-c` nodes
/// (8 GiB; `x1`, `x2`, …) for the load benchmark.
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
        node("a3", TEXT_GPU_MODEL, SMALL_VRAM_MIB, Behaviour::Honest),
        node("b1", LARGE_GPU_MODEL, LARGE_VRAM_MIB, Behaviour::Honest),
        node("b2", LARGE_GPU_MODEL, LARGE_VRAM_MIB, Behaviour::Honest),
    ];
    if cheater {
        nodes.push(node(
            "cheater",
            LARGE_GPU_MODEL,
            LARGE_VRAM_MIB,
            Behaviour::Counterfeit,
        ));
    }
    for index in 1..=extra {
        nodes.push(node(
            &format!("x{index}"),
            EXTRA_GPU_MODEL,
            SMALL_VRAM_MIB,
            Behaviour::Honest,
        ));
    }
    nodes
}

/// The GPU models the fleet declares, each with its VRAM, in first-declared order.
pub(crate) fn gpu_models(fleet: &[NodeSpec]) -> Vec<(&'static str, u32)> {
    let mut models: Vec<(&'static str, u32)> = Vec::new();
    for node in fleet {
        if !models.iter().any(|(name, _)| *name == node.gpu_model) {
            models.push((node.gpu_model, node.vram_mib));
        }
    }
    models
}

/// VRAM the image task asks for: with the cheater, 16 GiB, which only the three `devnet-gpu-b`
/// nodes (the cheater included) have; otherwise 8 GiB, which every node has.
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

    /// The nodes an image task needing `min_vram_mib` may draw: those whose model has it.
    fn eligible_for_image(fleet: &[NodeSpec], cheater: bool) -> Vec<&str> {
        let min_vram_mib = image_min_vram_mib(cheater);
        fleet
            .iter()
            .filter(|node| node.vram_mib >= min_vram_mib)
            .map(|node| node.name.as_str())
            .collect()
    }

    #[test]
    fn with_the_cheater_exactly_three_nodes_can_take_the_image_task() {
        for extra in [0, 3] {
            let fleet = fleet(true, extra);
            assert_eq!(eligible_for_image(&fleet, true), ["b1", "b2", "cheater"]);
        }
    }

    #[test]
    fn without_the_cheater_every_node_can_take_the_image_task() {
        let fleet = fleet(false, 2);
        assert_eq!(
            eligible_for_image(&fleet, false),
            ["a1", "a2", "a3", "b1", "b2", "x1", "x2"]
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

    #[test]
    fn every_model_has_one_vram_as_in_the_registry() {
        let fleet = fleet(true, 2);
        let models = gpu_models(&fleet);
        assert_eq!(
            models,
            [
                (TEXT_GPU_MODEL, SMALL_VRAM_MIB),
                (LARGE_GPU_MODEL, LARGE_VRAM_MIB),
                (EXTRA_GPU_MODEL, SMALL_VRAM_MIB)
            ]
        );
        for node in &fleet {
            assert!(
                models.contains(&(node.gpu_model, node.vram_mib)),
                "{node:?}"
            );
        }
    }
}
