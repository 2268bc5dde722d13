//! The community node program (`vigil-node`): serve, code, alerts, residents, sweep.
