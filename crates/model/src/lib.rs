//! The directory of one tenant, as Entra models it: users, directory roles, licences,
//! applications, service principals, delegated grants and app-role assignments.
//!
//! Knows nothing of HTTP or SQL. Objects serialise in Microsoft Graph's JSON shape
//! (camelCase), with secrets kept in fields Graph never returns.

pub mod directory;
pub mod ids;
pub mod objects;
pub mod tenant_file;

pub use directory::{Directory, DirectoryError};
pub use objects::*;
