"""The Discord channel: slash commands over ``bot.service.Paperbell``, and alerts as DMs and
channel posts (``DiscordNotifier``).

A thin adapter: commands parse an interaction, call the core once and render the result;
nothing here holds a business rule or touches SQL. Import from the submodules
(``handlers.discord.client`` for ``build_discord``/``DiscordClient``,
``handlers.discord.notifier`` for ``DiscordNotifier``); this package file stays empty so
``import handlers.discord`` pulls in nothing.
"""
