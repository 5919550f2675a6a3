"""The local stack: a real control plane, a KFP API emulator backed by a real MLMD store, and NATS."""
