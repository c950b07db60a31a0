"""The email channel: render messages as multipart mail and send them over SMTP, or write
them as ``.eml`` files when no SMTP host is configured (``build_email_notifier`` picks).

Import from the submodules (``handlers.email.notifier``, ``.smtp``, ``.files``,
``.render``); this package file stays empty so ``import handlers.email`` pulls in nothing.
"""
