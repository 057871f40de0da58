//! Reaching citizens: one-time receipt codes, API keys for offices' software and kiosks,
//! QR codes and posters, email invitations, and the abuse limits that suit public offices
//! (a rate limit per client address or kiosk, a honeypot, a minimum fill time).

pub mod codes;
pub mod invitations;
pub mod keys;
pub mod limits;
pub mod qr;
