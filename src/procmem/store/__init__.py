"""Storage backends behind one protocol (:class:`procmem.store.base.Store`)."""
