// Annotations the agent acts on.

/** `k8s4ai chaos kill-node` sets this on a Node; its agent then plays dead for it. */
export const ANNOTATION_CHAOS = 'k8s4ai.io/chaos';
export const CHAOS_NODE_KILLED = 'node-killed';
