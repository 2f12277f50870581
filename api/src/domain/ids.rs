//! One newtype per id, so a calendar id cannot be passed where an event id is meant.
//! All ids are UUID v7: time-ordered, so primary-key indexes stay append-mostly.

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl From<Uuid> for $name {
            fn from(value: Uuid) -> Self {
                Self(value)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// An organization (tenant).
    OrgId
);
id_type!(
    /// An API key (its public id, not its secret).
    ApiKeyId
);
id_type!(
    /// A calendar: a bookable resource.
    CalendarId
);
id_type!(
    /// An event type: what can be booked.
    EventTypeId
);
id_type!(
    /// An event: one appointment.
    EventId
);
