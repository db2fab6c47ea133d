//! CRI v1 front end: crustd and crustctl.
