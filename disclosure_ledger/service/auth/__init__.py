"""Who may do what: roles and their permissions (:mod:`.roles`), local accounts, API
tokens and sessions (:mod:`.accounts`), and the actor of a request (:mod:`.actor`)."""
