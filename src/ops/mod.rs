//! What an operator runs beside the signing path, never inside a signer: `init` (the keys and
//! the first version of every file), `new-key` (one key, for a rotation) and the root ceremony (drafting, signing offline and
//! publishing a new root). Both build on the repository and the roles below them.

pub mod init;
pub mod new_key;
pub mod root;
