//! Policy (placeholder until the policy module lands).
